"""The profile language: frozen pydantic v2 models, one ``Profile`` per bot.

This module is the structural pass only (types, ranges, unknown keys). Checks that relate several
fields live in :mod:`kasmm.config.checks` and run after it, so that each error can name the exact
field it is about. Secrets never appear here: credential fields hold a ``${VAR}`` reference, and
:mod:`kasmm.config.secrets` resolves it to a ``SecretStr`` only when a venue is built.

It holds the ``Profile`` itself, its small profile-wide blocks (rate limit, obligations) and the
``_accounts.yaml`` models; each other block has its own module, one job each:
:mod:`~kasmm.config.fields` (shared field types, ``StrictModel``), :mod:`~kasmm.config.sim_markets`
(simulated market models), :mod:`~kasmm.config.venues` (the ``venue:`` block),
:mod:`~kasmm.config.quoting` (modes, strategy, inventory, refresh),
:mod:`~kasmm.config.kill_switch` (risk rules) and :mod:`~kasmm.config.cross_venue` (``reference:``
and ``hedge:``). Every name they define is re-exported here, so ``from kasmm.config.schema import
X`` is the one import callers need.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from kasmm.config.cross_venue import (
    HedgeConfig,
    MarketRef,
    ReferenceConfig,
    ReferenceSource,
    UnhedgedRule,
)
from kasmm.config.fields import (
    SECRET_REF_PATTERN,
    SUPPORTED_EXCHANGES,
    Bps,
    ExchangeName,
    KillAction,
    ModeName,
    NonNegativeDecimal,
    NonNegativeFloat,
    PositiveDecimal,
    PositiveFloat,
    ProfileName,
    SecretRef,
    Share,
    StrictModel,
    Symbol,
)
from kasmm.config.kill_switch import (
    DEFAULT_MID_JUMP_PAUSE_S,
    DEFAULT_MID_JUMP_PCT,
    CountRule,
    KillRule,
    KillSwitchConfig,
    MaxDailyLossRule,
    MaxDrawdownRule,
    MaxInventoryDeviationRule,
    MidJumpRule,
    StaleBookRule,
)
from kasmm.config.pricing import (
    AfterFillConfig,
    HangingOrdersConfig,
    PriceBandConfig,
    PricingConfig,
)
from kasmm.config.quoting import (
    AvellanedaStoikovStrategy,
    FixedSpreadStrategy,
    Horizon,
    InventoryConfig,
    ModeConfig,
    Modes,
    RebalanceConfig,
    RefreshConfig,
    RollingHorizon,
    ScheduleEntry,
    SessionEndHorizon,
    Strategy,
    VolatilityConfig,
)
from kasmm.config.sim_markets import (
    ArbitrageConfig,
    AS2008Market,
    RandomWalkMarket,
    ReplayMarket,
    SimMarket,
    SimWorldConfig,
    WorldName,
)
from kasmm.config.venues import (
    CcxtVenueConfig,
    Credentials,
    PaperFees,
    PaperVenueConfig,
    RestUrl,
    SimFees,
    SimVenueConfig,
    VenueConfig,
    WsUrl,
)

__all__ = [
    "DEFAULT_MID_JUMP_PAUSE_S",
    "DEFAULT_MID_JUMP_PCT",
    "SECRET_REF_PATTERN",
    "SUPPORTED_EXCHANGES",
    "AS2008Market",
    "AccountLimits",
    "AccountsFile",
    "AfterFillConfig",
    "ArbitrageConfig",
    "AvellanedaStoikovStrategy",
    "Bps",
    "CcxtVenueConfig",
    "CountRule",
    "Credentials",
    "DepthObligation",
    "ExchangeName",
    "FixedSpreadStrategy",
    "HangingOrdersConfig",
    "HedgeConfig",
    "Horizon",
    "InventoryConfig",
    "KillAction",
    "KillRule",
    "KillSwitchConfig",
    "MarketRef",
    "MaxDailyLossRule",
    "MaxDrawdownRule",
    "MaxInventoryDeviationRule",
    "MidJumpRule",
    "ModeConfig",
    "ModeName",
    "Modes",
    "NonNegativeDecimal",
    "NonNegativeFloat",
    "ObligationsConfig",
    "PaperFees",
    "PaperVenueConfig",
    "PositiveDecimal",
    "PositiveFloat",
    "PriceBandConfig",
    "PricingConfig",
    "Profile",
    "ProfileName",
    "RandomWalkMarket",
    "RateLimitConfig",
    "RebalanceConfig",
    "ReferenceConfig",
    "ReferenceSource",
    "RefreshConfig",
    "ReplayMarket",
    "RestUrl",
    "RollingHorizon",
    "ScheduleEntry",
    "SecretRef",
    "SessionEndHorizon",
    "Share",
    "SimFees",
    "SimMarket",
    "SimVenueConfig",
    "SimWorldConfig",
    "StaleBookRule",
    "Strategy",
    "StrictModel",
    "Symbol",
    "UnhedgedRule",
    "VenueConfig",
    "VolatilityConfig",
    "WorldName",
    "WsUrl",
]


# --- profile-wide blocks ------------------------------------------------------------------


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


# --- the profile --------------------------------------------------------------------------


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
    pricing: PricingConfig = Field(
        PricingConfig(),
        description="Where quotes sit against the book: fee-aware prices, joining the book, "
        "the price band.",
    )
    after_fill: AfterFillConfig = Field(
        AfterFillConfig(),
        description="What a fill changes: the filled side's cooldown, ping-pong, hanging orders.",
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
