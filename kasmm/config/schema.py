"""The profile language: frozen pydantic v2 models, one ``Profile`` per bot.

This module is the structural pass only (types, ranges, unknown keys). Checks that relate several
fields live in :mod:`kasmm.config.checks` and run after it, so that each error can name the exact
field it is about. Secrets never appear here: credential fields hold a ``${VAR}`` reference, and
:mod:`kasmm.config.secrets` resolves it to a ``SecretStr`` only when a venue is built.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

# --- shared field types -------------------------------------------------------------------

PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Bps = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]

#: Pattern of a secret reference ``${VAR}``.
SECRET_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
_SECRET_REF_RE = re.compile(SECRET_REF_PATTERN)
_SECRET_REF_DESCRIPTION = "Reference to a secret as ${ENV_VAR} (never the secret itself)."


def _check_secret_ref(value: str) -> str:
    """Refuse anything but ``${VAR}``, with a message that never echoes the value."""
    if _SECRET_REF_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "secret_ref",
            "secrets must be referenced as {ref} (an environment variable or a file in "
            "{credentials_dir}), never inlined",
            {"ref": "${VAR}", "credentials_dir": "$CREDENTIALS_DIRECTORY"},
        )
    return value


#: A reference to a secret: ``${VAR}``. Resolved from the environment, then from
#: ``$CREDENTIALS_DIRECTORY/VAR`` (systemd ``LoadCredential=``). Literal secrets are refused
#: with a message that does not repeat them (and models hide inputs in their errors).
SecretRef = Annotated[
    str,
    AfterValidator(_check_secret_ref),
    WithJsonSchema(
        {"type": "string", "pattern": SECRET_REF_PATTERN, "description": _SECRET_REF_DESCRIPTION}
    ),
]

ProfileName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    Field(description="Unique profile name; defaults to the file stem."),
]

Symbol = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$"),
    Field(description="Market symbol BASE/QUOTE, e.g. KAS/USDT."),
]

#: Exchanges kasmm supports through ccxt (checked in the cross-field pass for a clear message).
SUPPORTED_EXCHANGES: tuple[str, ...] = ("mexc", "gate", "kucoin", "bingx")

ModeName = Literal["aggressive", "passive"]
KillAction = Literal["halt", "pause", "reduce_only"]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


# --- venues -------------------------------------------------------------------------------


#: A market's exchange as references name it: a ccxt id, or a sim venue's ``exchange`` name.
ExchangeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
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


_MAKER_DESCRIPTION = (
    "Fee on the bot's resting (maker) orders when filled, in bps of notional; negative is a "
    "rebate. A spread_bps below twice this loses money on every round trip (a warning)."
)
_TAKER_DESCRIPTION = "Fee on orders that take liquidity, in bps of notional."


class SimFees(StrictModel):
    """Fee rates of the simulated venue, in bps of notional (negative maker = rebate)."""

    maker_bps: Annotated[float, Field(ge=-100, le=1000, allow_inf_nan=False)] = Field(
        0.0, description=_MAKER_DESCRIPTION
    )
    taker_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        5.0, description=_TAKER_DESCRIPTION
    )


class SimVenueConfig(StrictModel):
    """The built-in simulated exchange: no keys, no network."""

    type: Literal["sim"] = Field(description="The built-in simulated exchange.")
    exchange: ExchangeName = Field(
        "sim",
        description="The name this venue's market is known by: the venue in logs and metrics, "
        "and the market key '<exchange>:<symbol>' other profiles reference. Not a live "
        "exchange's name (mexc, gate, kucoin, bingx).",
    )
    market: SimMarket = Field(
        RandomWalkMarket(),
        description="The simulated market: model random_walk (default), as2008 or replay.",
    )
    balances: dict[str, NonNegativeDecimal] = Field(
        {"KAS": Decimal("50000"), "USDT": Decimal("4000")},
        description="Starting balances per asset (on the first start on a ledger only; later "
        "starts resume from the ledger's fills).",
    )
    fees: SimFees = Field(SimFees(), description="Fee rates of simulated fills.")
    tick: PositiveDecimal = Field(Decimal("0.000001"), description="Price tick.")
    lot: PositiveDecimal = Field(Decimal("0.01"), description="Size lot.")
    min_notional: NonNegativeDecimal = Field(Decimal("1"), description="Minimum order notional.")
    seed: Annotated[int, Field(ge=0)] = Field(1, description="Random seed.")
    latency_ms: NonNegativeFloat = Field(0.0, description="Simulated request latency.")


#: A REST base URL override: ``scheme://host[:port]`` plus an optional path.
RestUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$")]
#: A websocket URL override: ``ws://`` or ``wss://``, host, optional port and path.
WsUrl = Annotated[str, StringConstraints(pattern=r"^wss?://[^\s/$.?#][^\s]*$")]


class Credentials(StrictModel):
    """API credentials, each as a ``${VAR}`` reference."""

    api_key: SecretRef = Field(description="API key, as a ${VAR} reference.")
    secret: SecretRef = Field(description="API secret, as a ${VAR} reference.")
    password: SecretRef | None = Field(None, description="Passphrase (KuCoin).")


class CcxtVenueConfig(StrictModel):
    """A live exchange through ccxt."""

    type: Literal["ccxt"] = Field(description="A live exchange through ccxt.")
    exchange: str = Field(description="ccxt exchange id: one of mexc, gate, kucoin, bingx.")
    credentials: Credentials = Field(
        description="API key, secret (and KuCoin passphrase) as ${VAR} references."
    )
    sandbox: bool = Field(False, description="Use the exchange's testnet (where ccxt has one).")
    rest_url: RestUrl | None = Field(
        None, description="Override of the spot REST base URL (regional, proxy, emulator)."
    )
    ws_url: WsUrl | None = Field(
        None,
        description="Override of the spot websocket URL (proxy, emulator), used as given: "
        "public and private streams connect to it (MEXC and BingX add their listen key). Not "
        "for KuCoin, whose websocket endpoint comes from the bullet-token answer of its REST "
        "API (rest_url).",
    )
    account: ProfileName | None = Field(
        None, description="Profiles naming the same account share its rate budget."
    )
    timeout_s: PositiveFloat = Field(10.0, description="Per-request timeout.")
    use_websocket: bool = Field(
        True, description="Stream books and fills over websockets (REST polling as fallback)."
    )
    book_poll_s: Annotated[float, Field(ge=0.05, le=60, allow_inf_nan=False)] = Field(
        0.5, description="REST order-book poll interval when websockets are off or down."
    )
    feed_stall_s: Annotated[float, Field(ge=1, le=600, allow_inf_nan=False)] = Field(
        5.0,
        description="A websocket book unchanged this long is checked against a REST snapshot: "
        "if the market moved meanwhile, the feed is stalled and is resubscribed (REST polling "
        "serves meanwhile); if not, the market is quiet and the feed stays.",
    )
    dead_man_switch_s: Annotated[float, Field(ge=10, le=120, allow_inf_nan=False)] | None = Field(
        60.0,
        description=(
            "Exchange-side cancel-all timer refreshed while the bot runs (Gate, KuCoin, BingX); "
            "null disables it. It cancels every order on the pair (BingX: the account), "
            "including orders that are not the bot's."
        ),
    )


class PaperFees(StrictModel):
    """Fee rates charged on simulated fills, in bps of notional (negative maker = rebate)."""

    maker_bps: Annotated[float, Field(ge=-100, le=1000, allow_inf_nan=False)] = Field(
        description=_MAKER_DESCRIPTION
    )
    taker_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        description=_TAKER_DESCRIPTION
    )


class PaperVenueConfig(StrictModel):
    """Paper trading: a real exchange's live public market data, fills simulated locally.

    No keys and no orders leave the machine. Resting orders fill when the live market trades at
    or through their price (see ``queue_position``); balances are virtual.
    """

    type: Literal["paper"] = Field(
        description="Paper trading: live public market data, fills simulated locally."
    )
    exchange: str = Field(
        description="ccxt exchange id whose public market data is used: mexc, gate, kucoin, bingx."
    )
    balances: dict[str, NonNegativeDecimal] = Field(
        {"KAS": Decimal("50000"), "USDT": Decimal("4000")},
        description="Virtual starting balances per asset.",
    )
    fees: PaperFees | None = Field(
        None,
        description="Fee rates of simulated fills. Default: the exchange's published spot fees "
        "for the market as ccxt reports them, or 10 bps maker and taker when unknown.",
    )
    rest_url: RestUrl | None = Field(
        None,
        description="Override of the REST base URL (proxy, emulator). Websockets keep the "
        "exchange's own URLs: set use_websocket: false to send all traffic to rest_url.",
    )
    poll_interval_s: Annotated[float, Field(ge=0.2, le=60, allow_inf_nan=False)] = Field(
        1.0,
        description="Period of REST polling (order book and recent trades) when websockets "
        "are off or failing.",
    )
    use_websocket: bool = Field(
        True, description="Stream book and trades over websockets (falls back to REST polling)."
    )
    queue_position: Literal["back", "front"] = Field(
        "back",
        description="Where a new order joins the queue at its price: 'back' fills only after the "
        "size displayed at that price when it was placed has traded (conservative); 'front' fills "
        "on the first trade at its price (optimistic).",
    )
    timeout_s: PositiveFloat = Field(10.0, description="Per-request timeout of market data calls.")


VenueConfig = Annotated[
    SimVenueConfig | CcxtVenueConfig | PaperVenueConfig, Field(discriminator="type")
]


# --- quoting ------------------------------------------------------------------------------


class ModeConfig(StrictModel):
    """One quoting mode: how wide, how big, how many levels."""

    spread_bps: Bps = Field(description="Total distance between bid and ask at level 0, in bps.")
    size: PositiveDecimal = Field(description="Order size per level.")
    size_unit: Literal["base", "quote"] = Field(
        "base", description="Whether ``size`` is in base units or quote notional."
    )
    levels: Annotated[int, Field(ge=1, le=20)] = Field(1, description="Orders per side.")
    level_step_bps: NonNegativeFloat = Field(
        5.0, description="Extra distance between consecutive levels, in bps."
    )


class Modes(StrictModel):
    """The two modes a profile switches between."""

    aggressive: ModeConfig | None = Field(
        None,
        description="Tight and shallow quoting, for volume. Optional when neither `mode` nor "
        "a schedule entry selects it.",
    )
    passive: ModeConfig = Field(
        description="Wide and deep quoting, the calm default; its spread_bps must be at least "
        "the aggressive one's."
    )


class ScheduleEntry(StrictModel):
    """Switch to ``mode`` whenever the cron expression fires."""

    cron: str = Field(description="Five-field crontab expression, e.g. '0 8 * * 1-5'.")
    timezone: str = Field("UTC", description="IANA time zone of the cron expression.")
    mode: ModeName = Field(description="The mode to switch to when the expression fires.")


class VolatilityConfig(StrictModel):
    """Volatility-adaptive spread: EWMA realized volatility widens the spread up to a cap."""

    halflife_s: PositiveFloat = Field(60.0, description="EWMA half-life of the estimator.")
    horizon_s: PositiveFloat = Field(
        10.0, description="Horizon over which volatility is priced into the spread."
    )
    multiplier: NonNegativeFloat = Field(
        1.0, description="Spread bps added per bps of volatility over the horizon."
    )
    cap_bps: Bps = Field(500.0, description="Maximum spread; the mode's spread is the floor.")


_VOLATILITY_DESCRIPTION = (
    "Optional volatility-adaptive widening of the spread (null: off): EWMA realized volatility "
    "adds spread up to cap_bps."
)


class FixedSpreadStrategy(StrictModel):
    """Spread around the mid with inventory skew (the classic market maker)."""

    type: Literal["fixed_spread"] = Field(
        description="Quote the mode's spread around the mid, skewed against inventory."
    )
    volatility: VolatilityConfig | None = Field(None, description=_VOLATILITY_DESCRIPTION)


class SessionEndHorizon(StrictModel):
    """T is a fixed daily session end; T-t counts down to it (in a backtest: the run's end)."""

    type: Literal["session_end"] = Field(description="T is a daily session end time.")
    end: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = Field(
        "00:00", description="Session end as 24-hour HH:MM in `timezone`."
    )
    timezone: str = Field("UTC", description="IANA time zone of `end`.")


class RollingHorizon(StrictModel):
    """T-t is a constant window, for continuous trading."""

    type: Literal["rolling"] = Field(description="T-t is a constant window.")
    window_s: PositiveFloat = Field(60.0, description="T-t in seconds.")


Horizon = Annotated[SessionEndHorizon | RollingHorizon, Field(discriminator="type")]


class AvellanedaStoikovStrategy(StrictModel):
    """Avellaneda–Stoikov (2008) reservation price and optimal spread, in the paper's units."""

    type: Literal["avellaneda_stoikov"] = Field(
        description="Avellaneda-Stoikov reservation price and optimal spread (the mode's "
        "spread_bps is not used; min_spread_bps bounds the spread)."
    )
    gamma: PositiveFloat = Field(description="Risk aversion.")
    kappa: PositiveFloat = Field(description="Order-book liquidity, per price unit.")
    sigma: PositiveFloat | None = Field(
        None, description="Volatility in price units per sqrt second; estimated online if unset."
    )
    sigma_halflife_s: PositiveFloat = Field(60.0, description="EWMA half-life of the estimator.")
    horizon: Horizon = Field(
        RollingHorizon(type="rolling"),
        description="T-t of the model: rolling (a constant window) or session_end.",
    )
    min_spread_bps: NonNegativeFloat = Field(
        0.0, description="Lower bound on the total spread (0 = the model's spread as is)."
    )
    volatility: VolatilityConfig | None = Field(None, description=_VOLATILITY_DESCRIPTION)


Strategy = Annotated[FixedSpreadStrategy | AvellanedaStoikovStrategy, Field(discriminator="type")]


class InventoryConfig(StrictModel):
    """Where inventory should sit and how hard to push it back."""

    target_share: Share | None = Field(
        None, description="Target base value as a share of portfolio value (default 0.5)."
    )
    target_base: NonNegativeDecimal | None = Field(
        None, description="Target as an absolute base amount (instead of target_share)."
    )
    min_share: Share = Field(0.1, description="Below this only the buy side is quoted.")
    max_share: Share = Field(0.9, description="Above this only the sell side is quoted.")
    skew_strength: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        1.0,
        description="Shift of both quotes, in half-spreads, at full deviation (share at min/max).",
    )
    min_base: NonNegativeDecimal | None = Field(None, description="Hard floor on base held.")
    max_base: PositiveDecimal | None = Field(None, description="Hard ceiling on base held.")


class RefreshConfig(StrictModel):
    """When resting orders are replaced."""

    tolerance_bps: NonNegativeFloat = Field(
        5.0, description="Keep an order whose price is within this of the desired price."
    )
    max_order_age_s: PositiveFloat = Field(300.0, description="Replace orders older than this.")
    min_requote_interval_s: NonNegativeFloat = Field(
        0.25, description="Minimum time between two rounds of order actions."
    )
    fallback_interval_s: PositiveFloat = Field(
        2.0, description="Re-evaluate at least this often when the market data stream is quiet."
    )
    replace_mode: Literal["cancel_first", "place_first"] = Field(
        "cancel_first",
        description=(
            "How a requote round replaces orders. cancel_first: cancels go out together with "
            "every placement the free balance already covers; a placement that needs what a "
            "cancel frees waits for that cancel. place_first: new orders first (the book is "
            "never empty while the balance allows), then the cancels, then what had to wait."
        ),
    )


# --- risk ---------------------------------------------------------------------------------

_ACTION_DESCRIPTION = (
    "What a trip does. halt: cancel every order and stop quoting until `kasmm reset PROFILE` "
    "(restarting kasmm does not clear a halt: it is kept in the ledger). pause: cancel every "
    "order and resume after pause_s. reduce_only: quote only the side that brings inventory "
    "back toward the target."
)


class KillRule(StrictModel):
    """Common fields of every kill-switch rule."""

    action: KillAction = Field("halt", description=_ACTION_DESCRIPTION)
    pause_s: PositiveFloat | None = Field(
        None, description="Seconds to pause; required with action: pause, refused otherwise."
    )


class MaxDrawdownRule(KillRule):
    """Trip when equity falls this far below its running peak."""

    quote: PositiveDecimal | None = Field(
        None, description="Limit in quote currency below the equity peak."
    )
    pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = Field(
        None, description="Limit in percent of peak equity (either limit trips the rule)."
    )


class MaxDailyLossRule(KillRule):
    """Trip when today's PnL (in ``timezone``) falls below ``-quote``."""

    quote: PositiveDecimal = Field(description="Loss limit for one day, in quote currency.")
    timezone: str = Field("UTC", description="IANA time zone in which a day starts at 00:00.")


class MaxInventoryDeviationRule(KillRule):
    """Trip when the base share deviates from target by more than ``share``."""

    action: KillAction = Field("reduce_only", description=_ACTION_DESCRIPTION)
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        description="Largest allowed |base share - target share| (0.3 = 30 points of share)."
    )


class StaleBookRule(KillRule):
    """Trip when the book has not changed for ``seconds``, however often it arrives."""

    action: KillAction = Field("pause", description=_ACTION_DESCRIPTION)
    seconds: PositiveFloat = Field(
        description="Longest time the book may stay unchanged, in seconds, before the rule trips."
    )


#: The default ``mid_jump`` rule. One book update moving the mid 5 % is ~a whole day's move of
#: KAS (2 bps per sqrt second is ~5.9 % a day) in a fraction of a second: a bad print, a wrong
#: or stale book, or a crash under way, where quotes priced off that mid are the likeliest to
#: be picked off. Pausing 30 s lets the book settle; ordinary volatility never comes close.
DEFAULT_MID_JUMP_PCT = 5.0
DEFAULT_MID_JUMP_PAUSE_S = 30.0


class MidJumpRule(KillRule):
    """Trip when the mid moves more than ``pct`` in one update (or the book is crossed)."""

    action: KillAction = Field("pause", description=_ACTION_DESCRIPTION)
    pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = Field(
        description="Largest allowed move of the mid between two book updates, in percent."
    )


class CountRule(KillRule):
    """Trip when a count reaches ``count``."""

    count: Annotated[int, Field(ge=1)] = Field(
        description="Limit: the rule trips when the count goes beyond it."
    )


class KillSwitchConfig(StrictModel):
    """Kill-switch rules; each applies to this profile only. ``null`` turns a rule off."""

    max_drawdown: MaxDrawdownRule | None = Field(
        None,
        description="Trip when equity falls quote (or pct %) below its running peak. A ccxt "
        "profile must set it, or set it to null explicitly to run without one.",
    )
    max_daily_loss: MaxDailyLossRule | None = Field(
        None,
        description="Trip when today's PnL falls below -quote. A ccxt profile must set it, or "
        "set it to null explicitly to run without one.",
    )
    max_inventory_deviation: MaxInventoryDeviationRule | None = Field(
        None,
        description="Trip when the base share is more than share away from the target "
        "(default action reduce_only).",
    )
    stale_book: StaleBookRule | None = Field(
        StaleBookRule(seconds=10.0, action="pause", pause_s=5.0),
        description="Trip when the book has not changed for seconds, however often it arrives "
        "(on by default: pause 5 s after 10 s; null turns it off).",
    )
    mid_jump: MidJumpRule | None = Field(
        MidJumpRule(pct=DEFAULT_MID_JUMP_PCT, action="pause", pause_s=DEFAULT_MID_JUMP_PAUSE_S),
        description="Trip when one book update moves the mid more than pct %, or the book is "
        "crossed. On by default (5 %, pause 30 s): such a jump is a bad print, a wrong book or "
        "a crash under way, where quotes are likeliest to be picked off; ordinary volatility "
        "(KAS ~6 % a day) never comes close. null turns it off.",
    )
    max_consecutive_errors: CountRule | None = Field(
        CountRule(count=10, action="pause", pause_s=30.0),
        description="Trip after count venue errors in a row (on by default: pause 30 s after "
        "10; null turns it off).",
    )
    max_order_actions_per_minute: CountRule | None = Field(
        None,
        description="Trip when the order actions (placements and cancels) of the last minute "
        "reach count: a guard against a runaway requote loop.",
    )


class RateLimitConfig(StrictModel):
    """This profile's token bucket."""

    capacity: PositiveFloat = Field(20.0, description="Bucket size (burst), in request weight.")
    refill_per_s: PositiveFloat = Field(10.0, description="Tokens added per second.")


class DepthObligation(StrictModel):
    """At least ``quote`` of own orders (both sides, quote currency) within ``band_pct`` of
    the mid."""

    band_pct: float = Field(
        2.0, description="Half-width of the band around the mid, in percent: 0.5, 1 or 2."
    )
    quote: PositiveFloat = Field(
        description="Smallest value of own orders inside the band (quote currency, both sides)."
    )

    @field_validator("band_pct")
    @classmethod
    def _known_band(cls, value: float) -> float:
        if value not in (0.5, 1.0, 2.0):
            raise ValueError("must be 0.5, 1 or 2 (the bands kasmm measures depth in)")
        return value


class ObligationsConfig(StrictModel):
    """A market-making agreement: what must hold, for what share of every window.

    At each instant the obligation is met when both sides are quoted, the own spread is at most
    ``max_spread_bps`` and the own depth satisfies ``min_depth`` (each only if set). Compliance
    is the share of each rolling ``window_s`` during which it was met; below ``min_uptime_pct``
    over a whole window is a breach (logged, counted, notified with ``obligation_breach``).
    """

    max_spread_bps: PositiveFloat | None = Field(
        None, description="Largest own spread (best ask - best bid), in bps of the mid."
    )
    min_depth: DepthObligation | None = Field(
        None, description="Smallest own depth within a band of the mid."
    )
    min_uptime_pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = Field(
        95.0, description="Share of each window the obligation must hold, in percent."
    )
    window_s: Annotated[float, Field(ge=60, le=86_400 * 7, allow_inf_nan=False)] = Field(
        3600.0, description="Length of the rolling window compliance is measured over (s)."
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


# --- the profile --------------------------------------------------------------------------


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


class Profile(StrictModel):
    """One market-making bot."""

    name: ProfileName
    enabled: bool = Field(
        True, description="false keeps the profile validated but never started by a supervisor."
    )
    venue: VenueConfig = Field(
        description="Where to trade: type sim (built-in simulated exchange), paper (live market "
        "data, simulated fills) or ccxt (a live exchange)."
    )
    symbol: Symbol
    modes: Modes = Field(description="The quoting modes: spread, size and levels of each.")
    mode: ModeName = Field(
        "passive", description="The mode at start, until a schedule entry switches it."
    )
    schedule: tuple[ScheduleEntry, ...] = Field(
        (), description="Cron entries that switch the mode (the latest one due applies at start)."
    )
    strategy: Strategy = Field(
        FixedSpreadStrategy(type="fixed_spread"),
        description="Pricing model: fixed_spread or avellaneda_stoikov.",
    )
    inventory: InventoryConfig = Field(
        InventoryConfig(), description="Inventory target, share bounds, hard caps and skew."
    )
    refresh: RefreshConfig = Field(
        RefreshConfig(), description="When resting orders are replaced: tolerance, age, pacing."
    )
    kill_switch: KillSwitchConfig = Field(
        KillSwitchConfig(),
        description="Kill-switch rules; rules left out take their defaults (stale_book, "
        "mid_jump and max_consecutive_errors are on by default).",
    )
    rate_limit: RateLimitConfig = Field(
        RateLimitConfig(), description="This profile's token bucket (request weight)."
    )
    obligations: ObligationsConfig | None = Field(
        None,
        description="A market-making agreement (max spread, min depth, min uptime) measured "
        "continuously; off when absent.",
    )
    reference: ReferenceConfig | None = Field(
        None,
        description="Price off other markets (cross-venue reference prices); absent: the own "
        "book's mid.",
    )
    order_prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{2,8}$")] | None = Field(
        None, description="Client order id prefix (default: derived from the name)."
    )
    hedge: HedgeConfig | None = Field(
        None,
        description="Cross-exchange market making: offset each fill with an immediate-or-cancel "
        "order on another profile's venue; off when absent.",
    )

    @property
    def base(self) -> str:
        """Base asset of ``symbol``."""
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        """Quote asset of ``symbol``."""
        return self.symbol.split("/")[1]

    @property
    def active_mode(self) -> ModeConfig:
        """The mode selected by ``mode`` (passive when aggressive is selected but not defined,
        which only a switch at run time can do: validation refuses such a profile)."""
        if self.mode == "aggressive" and self.modes.aggressive is not None:
            return self.modes.aggressive
        return self.modes.passive

    @property
    def client_id_prefix(self) -> str:
        """Prefix on every client order id of this profile (explicit, or a stable hash)."""
        if self.order_prefix is not None:
            return self.order_prefix
        return "k" + hashlib.sha256(self.name.encode()).hexdigest()[:5]

    def config_hash(self) -> str:
        """Hash of the normalized config: equal hashes mean nothing changed."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


# --- shared accounts (_accounts.yaml) -----------------------------------------------------


class AccountLimits(StrictModel):
    """A token bucket shared by every profile whose ``venue.account`` names this account."""

    capacity: PositiveFloat = Field(description="Bucket size (burst), in request weight.")
    refill_per_s: PositiveFloat = Field(description="Tokens added per second.")


class AccountsFile(StrictModel):
    """The ``_accounts.yaml`` file next to the profiles: per-account rate budgets."""

    accounts: dict[ProfileName, AccountLimits] = Field(
        default_factory=dict, description="Account name -> shared rate budget."
    )
